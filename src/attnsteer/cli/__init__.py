"""Command-line interface (`attnsteer ...`), built with typer."""
