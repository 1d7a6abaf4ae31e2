"""Write an .npz member by member, each array's rows chunk by chunk, so memory does not grow with the row count.

    with NpzStreamWriter(path) as npz:                      # path: a temp path (see motiondata.atomic.atomic_path)
        npz.write_array("ids", ids)                          # a small array at once
        npz.write_rows("maps", (N, 1024, 6), np.float32, chunks)   # chunks: iterable of (n_i, 1024, 6), sum n_i = N

The file is a plain (uncompressed, zip64) npz: np.load(path, allow_pickle=False) reads it.
"""
import zipfile

import numpy as np


class NpzStreamWriter:
    def __init__(self, path):
        self.zip = zipfile.ZipFile(path, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.zip.close()

    def write_array(self, name, array):
        array = np.asarray(array)
        if array.dtype.hasobject:
            raise TypeError(f"{name}: object arrays need pickle; convert to a fixed-width dtype first")
        self.write_rows(name, array.shape, array.dtype, [array])

    def write_rows(self, name, shape, dtype, chunks):
        dtype, shape = np.dtype(dtype), tuple(int(s) for s in shape)
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        rows = 0
        with self.zip.open(f"{name}.npy", mode="w", force_zip64=True) as member:
            np.lib.format.write_array_header_2_0(member, header)
            for chunk in chunks:
                chunk = np.ascontiguousarray(chunk, dtype=dtype)
                if chunk.shape[1:] != shape[1:]:
                    raise ValueError(f"{name}: chunk of shape {chunk.shape} does not fit rows of {shape[1:]}")
                member.write(chunk.tobytes())
                rows += len(chunk)
        if rows != (shape[0] if shape else 1) and shape:
            raise ValueError(f"{name}: wrote {rows} rows but the header says {shape[0]}")


def read_first_rows(path, name, count):
    """The first `count` rows of array `name` of an uncompressed npz, without loading the whole array."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{name}.npy") as member:
        version = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(member)
        if fortran_order or dtype.hasobject:
            raise ValueError(f"{path}:{name} is not a C-ordered plain array")
        count = min(count, shape[0])
        row_size = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize
        return np.frombuffer(member.read(count * row_size), dtype=dtype).reshape((count,) + tuple(shape[1:]))
