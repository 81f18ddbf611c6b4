"""Datasets the export pipeline trains on: real files read from disk, never downloaded."""
