"""Products: public, cached pages to read; their store's owner changes them and their images."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from starlette.datastructures import UploadFile

from services.common.errors import Invalid
from services.common.identity import CurrentCaller, OptionalCaller
from services.common.schemas import error_responses
from services.product.api.deps import Service, cached_response
from services.product.api.schemas import (
    Created,
    ImageOut,
    ProductIn,
    ProductOut,
    ProductPage,
    ProductPatch,
    changes,
)
from services.product.domain.catalogue import MAX_PAGE_SIZE, ListQuery, Sort
from services.product.images import stream

router = APIRouter(prefix="/products", tags=["products"])

CACHED = {"headers": {
    "X-Cache": {"description": "HIT, MISS, STALE (served while one request refreshes it) or "
                               "BYPASS (the cache is down: read from the database)",
                "schema": {"type": "string"}},
    "X-Cache-TTL": {"description": "seconds the page is cached for",
                    "schema": {"type": "number"}}}}
MULTIPART_OVERHEAD = 16 * 1024  # boundaries and part headers around the file
UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {
        "type": "object", "required": ["file"],
        "properties": {"file": {"type": "string", "format": "binary",
                                "description": "JPEG, PNG or WebP (product.images.*)"}}}}}}}


@router.get("", response_model=ProductPage, responses={200: CACHED, **error_responses(422)},
            summary="A page of listed products (public, cached)")
async def list_products(
    service: Service,
    store_id: Annotated[int | None, Query(alias="storeId")] = None,
    category_id: Annotated[int | None, Query(alias="categoryId",
                                             description="includes its subcategories")] = None,
    q: Annotated[str | None, Query(max_length=100, description="in name or description")] = None,
    min_price: Annotated[int | None, Query(alias="minPrice", ge=0)] = None,
    max_price: Annotated[int | None, Query(alias="maxPrice", ge=0)] = None,
    sort: Sort = Sort.NEWEST,
    page: Annotated[int, Query(ge=0, le=10_000)] = 0,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
) -> Response:
    query = ListQuery(store_id, category_id, q, min_price, max_price, sort, page, size)
    return cached_response(await service.product_list(query))


@router.post("", response_model=Created, status_code=status.HTTP_201_CREATED,
             responses=error_responses(401, 403, 404, 422),
             summary="Add a product to one of your stores")
async def create_product(body: ProductIn, caller: CurrentCaller, service: Service,
                         response: Response) -> Created:
    product_id = await service.create_product(caller, body.model_dump())
    response.headers["Location"] = f"/products/{product_id}"
    return Created(id=product_id)


@router.get("/{product_id}", response_model=ProductOut,
            responses={200: CACHED, **error_responses(404, 422)},
            summary="A product's page (public, cached; hidden ones only for their owner)")
async def get_product(product_id: int, caller: OptionalCaller, service: Service) -> Response:
    served = await service.product_page(product_id, caller)
    response = cached_response(served)
    response.headers["ETag"] = f'"{served.page.meta.get("version", "")}"'
    return response


@router.patch("/{product_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
              responses=error_responses(401, 403, 404, 422),
              summary="Change a product (its store's owner or an admin)")
async def update_product(product_id: int, body: ProductPatch, caller: CurrentCaller,
                         service: Service) -> Response:
    await service.update_product(caller, product_id, changes(body))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete("/{product_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response, responses=error_responses(401, 403, 404),
               summary="Delete a product (its store's owner or admin)")
async def delete_product(product_id: int, caller: CurrentCaller, service: Service) -> Response:
    await service.delete_product(caller, product_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{product_id}/images", response_model=ImageOut,
             status_code=status.HTTP_201_CREATED, openapi_extra=UPLOAD_BODY,
             responses=error_responses(401, 403, 404, 422, 503),
             summary="Upload an image (multipart field 'file'; type and size are checked)")
async def upload_image(product_id: int, request: Request, caller: CurrentCaller,
                       service: Service) -> ImageOut:
    limit = service.options().images.max_bytes
    declared = int(request.headers.get("content-length") or 0)
    if declared > limit + MULTIPART_OVERHEAD:  # refused before reading the body
        raise Invalid("file", "max_size", f"the upload has more than {limit} bytes")
    form = await request.form(max_files=1, max_fields=1)
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise Invalid("file", "missing", "send the image as the multipart field 'file'")
    data = await upload.read(limit + 1)
    return await service.add_image(caller, product_id, upload.content_type, data, len(data))


@router.get("/{product_id}/images/{image_id}", response_class=StreamingResponse,
            responses={200: {"content": {"image/*": {}},
                             "description": "the image, streamed from S3"},
                        **error_responses(404, 503)},
            summary="An image's bytes (public; on AWS, CloudFront serves them)")
async def get_image(product_id: int, image_id: str, caller: OptionalCaller,
                    service: Service) -> StreamingResponse:
    row = await service.image_object(product_id, image_id, caller)
    stored = await service.images.open(str(row["object_key"]))
    return StreamingResponse(stream(stored), media_type=stored.content_type, headers={
        "Content-Length": str(stored.length), "ETag": stored.etag,
        "Cache-Control": "public, max-age=31536000, immutable"})


@router.delete("/{product_id}/images/{image_id}", status_code=status.HTTP_204_NO_CONTENT,
               response_class=Response, responses=error_responses(401, 403, 404),
               summary="Remove an image (the product's owner)")
async def delete_image(product_id: int, image_id: str, caller: CurrentCaller,
                       service: Service) -> Response:
    await service.remove_image(caller, product_id, image_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
