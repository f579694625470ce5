"""Kafka client helpers shared by ECAP's workers and jobs."""
