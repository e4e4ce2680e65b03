"""The running service: the inbox watcher and settler, the library watch, the service that wires everything."""
