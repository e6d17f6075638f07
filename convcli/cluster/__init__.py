"""Sending convcli's work to a Dask cluster: images in tiles (:mod:`convcli.cluster.tiles`) and the
connection to a scheduler (:mod:`convcli.cluster.client`).

Dask, distributed and zarr are optional (``pip install 'convcli[dask]'``) and imported only by the
functions that need them.
"""
