"""Log reading for `lmdoctor explain`: streaming reader, normalisation, structure extraction."""
