from dpot.cli import entry

entry()
