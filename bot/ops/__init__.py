"""Operator commands (`modbot a2i setup`, `modbot audit export`): composition roots."""
