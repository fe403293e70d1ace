"""Binds every scenario of every .feature file in this folder to the steps in steps/."""

from pytest_bdd import scenarios

scenarios(".")
