package com.example.catalog;

import java.math.BigDecimal;
import java.util.Collection;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicLong;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.http.HttpStatus;
import org.springframework.web.bind.annotation.GetMapping;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.PostMapping;
import org.springframework.web.bind.annotation.RequestBody;
import org.springframework.web.bind.annotation.RequestMapping;
import org.springframework.web.bind.annotation.ResponseStatus;
import org.springframework.web.bind.annotation.RestController;
import org.springframework.web.server.ResponseStatusException;

@RestController
@RequestMapping("/api")
public class CatalogController {

    private static final Logger log = LoggerFactory.getLogger(CatalogController.class);

    public record Product(long id, String name, BigDecimal price, int stock) {}

    public record OrderRequest(long productId, int quantity) {}

    public record Order(long id, long productId, int quantity, BigDecimal total, String status) {}

    private final Map<Long, Product> products = new ConcurrentHashMap<>(Map.of(
            1L, new Product(1, "Espresso beans 1kg", new BigDecimal("24.90"), 120),
            2L, new Product(2, "Burr grinder", new BigDecimal("149.00"), 15),
            3L, new Product(3, "Milk jug 600ml", new BigDecimal("18.50"), 60)));

    private final AtomicLong orderIds = new AtomicLong(1000);

    @GetMapping("/products")
    public Collection<Product> listProducts() {
        log.info("Listing {} products", products.size());
        return products.values();
    }

    @GetMapping("/products/{id}")
    public Product getProduct(@PathVariable long id) {
        Product product = products.get(id);
        if (product == null) {
            log.warn("Product {} not found", id);
            throw new ResponseStatusException(HttpStatus.NOT_FOUND, "product not found");
        }
        return product;
    }

    @PostMapping("/orders")
    @ResponseStatus(HttpStatus.CREATED)
    public Order placeOrder(@RequestBody OrderRequest request) {
        if (request.quantity() <= 0) {
            throw new ResponseStatusException(HttpStatus.BAD_REQUEST, "quantity must be positive");
        }
        Product product = products.get(request.productId());
        if (product == null) {
            log.warn("Order rejected: product {} not found", request.productId());
            throw new ResponseStatusException(HttpStatus.NOT_FOUND, "product not found");
        }
        BigDecimal total = product.price().multiply(BigDecimal.valueOf(request.quantity()));
        Order order = new Order(orderIds.incrementAndGet(), product.id(), request.quantity(), total, "CREATED");
        log.info("Order {} placed: product {} x {}", order.id(), product.id(), order.quantity());
        return order;
    }
}
