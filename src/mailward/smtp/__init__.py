"""SMTP listeners: the protocol side of the hub (inbound MX and authenticated submission)."""
