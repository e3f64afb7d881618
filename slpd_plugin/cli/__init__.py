"""The command-line tools' code: ``tools/<tool>.py`` runs ``slpd_plugin.cli.<tool>.main``."""
