"""Writers of results, one per format. None of them talks to the network."""
