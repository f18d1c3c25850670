"""Automation domain: schedules and sensors that keep the graph fresh."""
