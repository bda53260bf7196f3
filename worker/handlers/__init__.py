"""The handlers jobdock ships: ``process_document`` (``documents``) and the demo handlers, one
per stopping mode (``demo``). ``worker.registry`` names them and says how each is stopped."""
