"""Gymnasium environments built on the worldsim library (dependencies flow envs -> worldsim)."""
