"""A SIP gateway inside the relay: a carrier's trunk answered directly (issue 14)."""
