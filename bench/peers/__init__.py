"""The peer servers the bench measures beside ours (KServe, MLServer): their pinned versions,
the virtualenvs the bench builds for them, and the small model classes they load."""
