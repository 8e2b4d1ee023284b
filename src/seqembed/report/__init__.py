"""Pictures and the HTML report: projections, figures, fonts, pages."""
