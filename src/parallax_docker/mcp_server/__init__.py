"""The runtime as an MCP server (the official ``mcp`` SDK): tools in tools.py, the HTTP
endpoint /mcp in http.py, stdio in cli/mcp_command.py. docs/mcp.md tells how to connect."""
