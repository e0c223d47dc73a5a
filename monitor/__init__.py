"""monitor: metric monitoring and attribution for risk-control teams."""
