"""Real mail servers for the sending tests: Postfix and Dovecot started on loopback
with their own configuration, aiosmtpd servers that misbehave on purpose, and a
store holding one issue queued for N subscribers."""
