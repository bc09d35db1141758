"""The web page of ``ecgnet app``: ``app.py`` (the Streamlit script), ``session`` (uploads to library calls), ``figures``."""
