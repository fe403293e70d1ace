#!/usr/bin/env bash
# A new customer's whole journey, through the gateway only (README "A walkthrough").
# Needs a running, seeded local cloud: `make up && .venv/bin/come2us seed`. Uses curl and jq.
set -euo pipefail

G=${GATEWAY:-http://127.0.3.80:8080}
J='content-type: application/json'
EMAIL="walker-$(date +%s)@example.com"
step() { printf '\n\033[1m%s\033[0m\n' "$*"; }
fail() { printf '\033[1;31mwalkthrough failed:\033[0m %s\n' "$*" >&2; exit 1; }

step "1. Sign up and log in"
curl -sf -XPOST "$G/api/auth/signup" -H "$J" \
     -d "{\"email\":\"$EMAIL\",\"password\":\"correct-horse-42\",\"displayName\":\"Walker\"}" | jq -c .
TOKENS=$(curl -sf -XPOST "$G/api/auth/login" -H "$J" \
     -d "{\"email\":\"$EMAIL\",\"password\":\"correct-horse-42\"}")
A=$(jq -r .accessToken <<<"$TOKENS")
AUTH="authorization: Bearer $A"
curl -sf "$G/api/users/me" -H "$AUTH" | jq -c '{id, email, roles}'

step "2. Browse and search (public)"
curl -sf "$G/api/categories" | jq -c '[.[].name]'
curl -sf "$G/api/products?size=3" | jq -c '[.items[] | {id, name, price}]'
SHOE=$(curl -sf "$G/api/ai/search?q=running%20shoes&limit=3" | jq -r '.results[0].productId')
curl -sf "$G/api/products/$SHOE" | jq -c '{id, name, price, stock}'

step "3. Cart, address, coupon"
curl -sf -XPOST "$G/api/cart/items" -H "$AUTH" -H "$J" -d "{\"productId\":$SHOE,\"quantity\":1}" \
     | jq -c '{total: .total, lines: [.lines[] | {productId, quantity}]}'
ADDR=$(curl -sf -XPOST "$G/api/addresses" -H "$AUTH" -H "$J" \
     -d '{"recipient":"Walker","phone":"010-1234-5678","postalCode":"04524","line1":"110 Sejong-daero, Jung-gu, Seoul"}' \
     | jq -r .id)
curl -sf -XPOST "$G/api/coupons/WELCOME10/hold" -H "$AUTH" | jq -c .

step "4. Order (an Idempotency-Key makes a retry safe) and wait until it is paid"
KEY=$(cat /proc/sys/kernel/random/uuid)
ORDER=$(curl -sf -XPOST "$G/api/orders" -H "$AUTH" -H "$J" -H "Idempotency-Key: $KEY" \
     -d "{\"addressId\":$ADDR,\"couponCode\":\"WELCOME10\"}" | jq -r .id)
echo "order $ORDER"
for _ in $(seq 1 40); do
  STATUS=$(curl -sf "$G/api/orders/$ORDER" -H "$AUTH" | jq -r .status)
  [ "$STATUS" = "PAID" ] && break
  sleep 0.5
done
[ "$STATUS" = "PAID" ] || fail "order $ORDER is $STATUS, not PAID after 20 s"
curl -sf "$G/api/orders/$ORDER" -H "$AUTH" | jq -c '{id, status, total, discount}'

step "5. Review what was bought"
curl -sf -XPOST "$G/api/reviews" -H "$AUTH" -H "$J" \
     -d "{\"productId\":$SHOE,\"orderId\":\"$ORDER\",\"rating\":5,\"body\":\"Light and quick.\"}" \
     | jq -c '{id, rating}'

step "6. Ask for a refund and wait until it is refunded"
curl -sf -XPOST "$G/api/orders/$ORDER/refund" -H "$AUTH" | jq -c '{id, status}'
for _ in $(seq 1 40); do
  STATUS=$(curl -sf "$G/api/orders/$ORDER" -H "$AUTH" | jq -r .status)
  [ "$STATUS" = "REFUNDED" ] && break
  sleep 0.5
done
[ "$STATUS" = "REFUNDED" ] || fail "order $ORDER is $STATUS, not REFUNDED after 20 s"
echo "order $ORDER: $STATUS"
