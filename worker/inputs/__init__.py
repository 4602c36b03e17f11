"""Input readers: archives streamed member by member, and image decoding with limits."""
