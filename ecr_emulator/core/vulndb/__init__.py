"""The vulnerability database: OSV records imported into tables, looked up per (ecosystem, package).

``versions`` orders versions the way each package manager does, ``severity`` maps CVSS vectors and
distro priorities to ECR's levels, ``osv`` validates records, ``store`` imports and queries them.
"""
