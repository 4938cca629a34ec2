"""Where jobs run: the local backend (worker processes on this machine) and Modal."""
