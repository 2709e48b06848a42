"""Who may do what: project roles, and licenses with their floating seats."""
