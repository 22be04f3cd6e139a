"""The Open Inference Protocol (V2) over HTTP with binary tensor data: what goes on the wire.

A request is ``POST /v2/models/{name}/infer`` whose body is a JSON header
followed by the raw bytes of each input tensor, in order; the header's length in
bytes is in the ``Inference-Header-Content-Length`` HTTP header and each input's
byte count in its ``parameters.binary_data_size`` (the binary tensor data
extension of the protocol, which KServe, Triton and MLServer all implement).
Answers come back the same way when the request asks for binary outputs;
JSON ``data`` lists are read too. Tensors are little-endian, C order.
"""

import json

import numpy as np

#: V2 datatype names of the numpy dtypes fastspec sends and reads.
DATATYPES = {"INT64": np.dtype("<i8"), "INT32": np.dtype("<i4"), "FP32": np.dtype("<f4"),
             "FP64": np.dtype("<f8"), "FP16": np.dtype("<f2")}
_NAMES = {v: k for k, v in DATATYPES.items()}
HEADER_LENGTH = "inference-header-content-length"


def datatype_of(array):
    """The V2 datatype name of ``array``'s dtype (ValueError for others)."""
    dtype = np.dtype(array.dtype).newbyteorder("<")
    try:
        return _NAMES[dtype]
    except KeyError:
        raise ValueError(f"no V2 datatype for numpy dtype {array.dtype}; send int64, int32, "
                         "float32 or float64") from None


def encode_request(inputs, outputs):
    """Body and headers of an inference request with binary inputs.

    Parameters
    ----------
    inputs : list of (str, ndarray)
        Input names and tensors, sent in this order.
    outputs : list of str
        Names of the outputs asked for, each as binary data.

    Returns
    -------
    body : bytes
    headers : dict of str to str
    """
    specs, blobs = [], []
    for name, array in inputs:
        array = np.ascontiguousarray(array, dtype=np.dtype(array.dtype).newbyteorder("<"))
        blob = array.tobytes()
        specs.append({"name": name, "shape": list(array.shape), "datatype": datatype_of(array),
                      "parameters": {"binary_data_size": len(blob)}})
        blobs.append(blob)
    header = json.dumps({"inputs": specs, "parameters": {"binary_data_output": True},
                         "outputs": [{"name": o, "parameters": {"binary_data": True}}
                                     for o in outputs]}).encode()
    headers = {"Content-Type": "application/octet-stream",
               "Inference-Header-Content-Length": str(len(header))}
    return header + b"".join(blobs), headers


def decode_response(body, headers):
    """The output tensors of an inference answer, by name.

    Returns
    -------
    dict of str to (ndarray, str)
        Each output's array (a read-only view of ``body`` for binary data) and
        its V2 datatype name.

    Raises
    ------
    ValueError
        If the body is not a V2 inference response.
    """
    return decode_tensors(body, headers, "outputs", "response")[1]


def decode_request(body, headers):
    """The JSON header and the input tensors of an inference request.

    What the server reads instead of KServe's own parser, which turns every
    binary input into a Python list before the model sees it (about 75% of the
    server's time on a 2.4 MB context, measured with py-spy).

    Returns
    -------
    header : dict
    inputs : dict of str to (ndarray or None, str)
        As :func:`decode_response` (None for a datatype fastspec does not read).
    """
    return decode_tensors(body, headers, "inputs", "request")


def decode_tensors(body, headers, section, what):
    """``(header, {name: (array, datatype)})`` of the tensors listed under ``section``."""
    length = headers.get(HEADER_LENGTH)
    n_header = int(length) if length is not None else len(body)
    try:
        header = json.loads(body[:n_header])
    except ValueError as exc:
        raise ValueError(f"the {what} is not a V2 inference {what} ({exc}): "
                         f"{body[:200]!r}") from None
    if not isinstance(header, dict) or section not in header:
        raise ValueError(f"the {what} is not a V2 inference {what}: {body[:200]!r}")
    tensors, offset = {}, n_header
    for out in header[section]:
        datatype = out.get("datatype")
        shape = tuple(int(s) for s in out.get("shape", ()))
        size = (out.get("parameters") or {}).get("binary_data_size")
        if datatype not in DATATYPES:
            tensors[out.get("name")] = (None, datatype)
            offset += int(size or 0)
            continue
        dtype = DATATYPES[datatype]
        if size is not None:
            if offset + int(size) > len(body):
                raise ValueError(f"tensor {out.get('name')!r} declares {size} bytes past the "
                                 f"end of the {what}")
            array = np.frombuffer(body, dtype=dtype, count=int(size) // dtype.itemsize,
                                  offset=offset)
            offset += int(size)
        else:
            array = np.asarray(out.get("data", []), dtype=dtype)
        if array.size != int(np.prod(shape, dtype=np.int64)):
            raise ValueError(f"tensor {out.get('name')!r} declares shape {list(shape)} but "
                             f"carries {array.size} values")
        tensors[out.get("name")] = (array.reshape(shape), datatype)
    return header, tensors
