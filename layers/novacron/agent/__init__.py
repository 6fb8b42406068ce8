"""The collection agent: StatsD, scrapes and local OTLP in; a disk queue; remote write / OTLP out."""
