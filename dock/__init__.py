"""The Processing Dock: a Streamlit UI over ``background_jobs``.

``dock_app.py`` wires these modules together (``dock_server.py`` serves it with server push):

- ``config``    where Supabase is (env, ``.env``, ``.streamlit/secrets.toml``), the dock's timings
- ``mirror``    the live, realtime-fed copy of the jobs table (one per server process)
- ``resources`` the cached client and mirror
- ``state``     session-state keys, initialised once, and flash messages
- ``callbacks`` one function per button: call a ``jobdock`` action, write a flash message
- ``cancellation`` Cancel & Delete / Cancel all, waiting for the workers' stop through the mirror
- ``present``   how a job reads on screen (labels, badges, relative times); no Streamlit
- ``views``     ``st.*`` calls only
- ``push``      the WebSocket that tells open pages the mirror changed, and their listener
"""
