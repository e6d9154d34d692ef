"""Agent images: what they are (catalog), how they are built (builder), and how to show it."""
