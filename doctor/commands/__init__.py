"""One module per subcommand; each returns a Report (or prints data) and leaves rendering to doctor.render."""
