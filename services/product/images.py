"""Product images in S3 (locally the AWS emulator), written and read with boto3.

Uploads come through this service (``POST /products/{id}/images``, multipart), which checks the
type and size before anything is stored. Clients fetch images at the URL in the product page:
this service's own route (``GET /products/{id}/images/{image_id}``, through the gateway,
streamed from S3), or, when ``product.images.public-base-url`` is set (on AWS: the CloudFront
distribution whose origin is the bucket), that URL plus the object key. The bucket itself
stays private either way.

boto3 is synchronous: each call runs in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from services.common.errors import NotFound, Unavailable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHUNK = 64 * 1024


@dataclass(frozen=True)
class StoredObject:
    content_type: str
    length: int
    etag: str
    body: Any  # botocore StreamingBody


class ImageStore:
    def __init__(self, bucket: str, endpoint: str, region: str) -> None:
        self.bucket = bucket
        config = Config(connect_timeout=2, read_timeout=5,
                        retries={"max_attempts": 2, "mode": "standard"},
                        s3={"addressing_style": "path"})
        self.client: S3Client = boto3.client(
            "s3", endpoint_url=endpoint or None, region_name=region or None, config=config)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        try:
            await asyncio.to_thread(self.client.put_object, Bucket=self.bucket, Key=key,
                                    Body=data, ContentType=content_type,
                                    CacheControl="public, max-age=31536000, immutable")
        except (BotoCoreError, ClientError) as error:
            raise Unavailable(f"the image store refused the upload: {error}") from error

    async def open(self, key: str) -> StoredObject:
        try:
            answer = await asyncio.to_thread(self.client.get_object, Bucket=self.bucket,
                                             Key=key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise NotFound(f"image object {key} is not in the bucket") from error
            raise Unavailable(f"the image store failed: {error}") from error
        except BotoCoreError as error:
            raise Unavailable(f"the image store cannot be reached: {error}") from error
        return StoredObject(answer.get("ContentType", "application/octet-stream"),
                            int(answer.get("ContentLength", 0)),
                            answer.get("ETag", ""), answer["Body"])

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(self.client.delete_object, Bucket=self.bucket, Key=key)
        except (BotoCoreError, ClientError) as error:
            raise Unavailable(f"the image store failed: {error}") from error


async def stream(stored: StoredObject) -> AsyncIterator[bytes]:
    """The object's bytes, chunk by chunk, each read in a worker thread."""
    try:
        while chunk := await asyncio.to_thread(stored.body.read, CHUNK):
            yield chunk
    finally:
        stored.body.close()
