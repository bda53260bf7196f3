"""jobdock core: settings, Supabase clients, the Job model and one action per dock button.

No Streamlit here: the dock, the CLI and the worker all build on this package.
"""

__version__ = "0.1.0"
