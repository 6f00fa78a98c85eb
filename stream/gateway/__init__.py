"""`valence gateway`: HTTP and WebSocket access to the topics, and the writing page."""
