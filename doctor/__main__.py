"""Entry point for ``python -m doctor``."""
from doctor.cli import main

if __name__ == "__main__":
    main()
