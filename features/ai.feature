Feature: Semantic product search keeps up with the catalogue
  The AI service embeds every product with a sentence-embedding model that ships inside a
  Python package (all-MiniLM-L6-v2, int8 ONNX) and ranks products by meaning, not by shared
  words. Product events keep its index current: a new product is searchable seconds later.
  The catalogue is the seed catalogue (stack/local/seed_catalogue.yaml): hundreds of products
  from electronics to books, among them a handful of running shoes.

  Background:
    Given the local cloud is up
    And the seed catalogue is loaded
    And the AI service has indexed the seed catalogue

  Scenario: Searching "running shoes" ranks the running shoes above unrelated products
    When a shopper searches for "running shoes"
    Then every running shoe of the seed catalogue is among the results
    And no product outside the shoe department ranks above a running shoe

  Scenario: The products similar to a running shoe are shoes
    When a shopper asks for the 5 products most similar to a running shoe
    Then all 5 are shoes

  Scenario: A product created after start becomes searchable within seconds
    When a seller adds a product "Carbon Fibre Kayak Paddle" described as "A light two-piece paddle for sea kayaking, with adjustable feathering."
    Then within 15 seconds a search for "kayak paddle" ranks that product first
