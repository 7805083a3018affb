"""The Flet console. It talks to the bridge only through client/ and protocol/."""
