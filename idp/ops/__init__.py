"""What the platform around the provider needs: health and readiness (:mod:`.health`), start-up checks (:mod:`.checks`).

``create_app`` registers them; the views of the product know nothing of them.
"""
