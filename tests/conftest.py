"""pytest puts this folder on sys.path (rootdir conftest), so tests in subfolders can import the
shared helpers here: ``from host_devices import run_on_host_devices``."""
