"""The `logstore` command line: parses options, calls one library function, formats the result."""
