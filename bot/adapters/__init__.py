"""The only code that talks to Slack, AWS, the network, Pillow and the database."""
