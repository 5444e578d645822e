"""One module (or package) per staff command."""
