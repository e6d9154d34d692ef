"""The Docker Swarm deployment: agents as Swarm services across a cluster (docs/swarm.md)."""
