"""Storage: the contracts (Protocols), the collection design, the shared day-range and funnel math, and one
package per backend. The only place that imports a database driver.
"""
