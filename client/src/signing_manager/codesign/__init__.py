"""Apple code signing of Mach-O files and bundles, with the key kept elsewhere (see ``signing``)."""
