"""The studio's Qt layer (PySide6 + qasync): windows, tabs, widgets and the job adapter. No torch."""
