"""Test fakes and rigs. They live here, never in the product packages."""
