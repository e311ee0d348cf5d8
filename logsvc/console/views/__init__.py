"""One module per page, each with its ``routes``: the overview, a topic, the message browser, a
group, the dead letters, and signing in with a console token."""
