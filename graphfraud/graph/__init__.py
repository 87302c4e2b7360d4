"""GraphStore seam: publish the identity graph, read a user's ring, explain a link."""
