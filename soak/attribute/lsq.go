package attribute

import (
	"errors"
	"math"

	"github.com/relaysoak/relaysoak/internal/stats"
)

// The solver here is small on purpose: at most six columns (intercept, time,
// four factors) and a few thousand rows. Columns are centred and scaled to
// unit norm before a modified Gram–Schmidt QR (orthogonalised twice, which
// makes it as accurate as Householder for so few columns), so that counts in
// the millions and seconds in the thousands meet on equal terms.

// collinearTol is the least norm a unit column may keep after removing its
// projection on the columns before it: below it the column is (numerically)
// a combination of the others, R² > 1 − 1e-10, and is dropped.
const collinearTol = 1e-5

// nearCollinearTol flags a column kept but nearly explained by the others
// (R² > 0.9999): its interval will be wide, and the result says why.
const nearCollinearTol = 1e-2

// scaledDesign is a design matrix centred and scaled column by column. Column
// 0 is the intercept (ones, not centred); the rest are slopes.
type scaledDesign struct {
	n, p  int
	cols  [][]float64 // cols[j][i], centred and scaled (j ≥ 1)
	mean  []float64
	scale []float64
}

func newScaledDesign(x [][]float64) scaledDesign {
	p := len(x)
	n := len(x[0])
	d := scaledDesign{n: n, p: p, cols: make([][]float64, p), mean: make([]float64, p), scale: make([]float64, p)}
	for j, c := range x {
		col := make([]float64, n)
		if j == 0 {
			for i := range col {
				col[i] = 1
			}
			d.cols[j], d.scale[j] = col, 1
			continue
		}
		var m float64
		for _, v := range c {
			m += v
		}
		m /= float64(n)
		var ss float64
		for i, v := range c {
			col[i] = v - m
			ss += col[i] * col[i]
		}
		s := math.Sqrt(ss)
		if s > 0 {
			for i := range col {
				col[i] /= s
			}
		}
		d.cols[j], d.mean[j], d.scale[j] = col, m, s
	}
	return d
}

// independence returns, for each column, the norm it keeps after removing
// its projection on the kept columns before it (columns of unit norm: 1 is
// orthogonal to all others, 0 a combination of them), deciding in order which
// columns to keep. A constant column keeps 0.
func (d scaledDesign) independence() (resid []float64, keep []bool) {
	resid = make([]float64, d.p)
	keep = make([]bool, d.p)
	var basis [][]float64
	for j := 0; j < d.p; j++ {
		v := append([]float64(nil), d.cols[j]...)
		norm0 := norm(v)
		if d.scale[j] == 0 || norm0 == 0 {
			continue
		}
		for range 2 {
			for _, q := range basis {
				axpy(-dot(q, v), q, v)
			}
		}
		r := norm(v) / norm0
		resid[j] = r
		if r < collinearTol {
			continue
		}
		keep[j] = true
		scal(1/norm(v), v)
		basis = append(basis, v)
	}
	return resid, keep
}

// wls solves the weighted least-squares problem on the kept columns of d and
// returns the coefficients in scaled coordinates, (X̃ᵀWX̃)⁻¹ and the residuals
// y − X̃β (unweighted).
func (d scaledDesign) wls(y, w []float64, keep []int) (beta []float64, ainv [][]float64, resid []float64, err error) {
	n, p := d.n, len(keep)
	sw := make([]float64, n)
	for i := range sw {
		sw[i] = math.Sqrt(w[i])
	}
	// Q (n×p) and R (p×p) of √W·X̃ by modified Gram–Schmidt, twice.
	q := make([][]float64, p)
	r := make([][]float64, p)
	for k := range r {
		r[k] = make([]float64, p)
	}
	for k, j := range keep {
		v := make([]float64, n)
		for i := range v {
			v[i] = sw[i] * d.cols[j][i]
		}
		for range 2 {
			for l := 0; l < k; l++ {
				c := dot(q[l], v)
				r[l][k] += c
				axpy(-c, q[l], v)
			}
		}
		nv := norm(v)
		if nv == 0 || math.IsNaN(nv) {
			return nil, nil, nil, errors.New("singular design after weighting")
		}
		r[k][k] = nv
		scal(1/nv, v)
		q[k] = v
	}
	qty := make([]float64, p)
	wy := make([]float64, n)
	for i := range wy {
		wy[i] = sw[i] * y[i]
	}
	for k := range qty {
		qty[k] = dot(q[k], wy)
	}
	beta = backSolve(r, qty)
	rinv := upperInverse(r)
	ainv = make([][]float64, p)
	for a := range ainv {
		ainv[a] = make([]float64, p)
		for b := range ainv[a] {
			var s float64
			for k := max(a, b); k < p; k++ {
				s += rinv[a][k] * rinv[b][k]
			}
			ainv[a][b] = s
		}
	}
	resid = make([]float64, n)
	for i := range resid {
		f := 0.0
		for k, j := range keep {
			f += beta[k] * d.cols[j][i]
		}
		resid[i] = y[i] - f
	}
	return beta, ainv, resid, nil
}

// backSolve solves Rx = b for upper-triangular R.
func backSolve(r [][]float64, b []float64) []float64 {
	p := len(b)
	x := make([]float64, p)
	for i := p - 1; i >= 0; i-- {
		s := b[i]
		for k := i + 1; k < p; k++ {
			s -= r[i][k] * x[k]
		}
		x[i] = s / r[i][i]
	}
	return x
}

// upperInverse inverts an upper-triangular R.
func upperInverse(r [][]float64) [][]float64 {
	p := len(r)
	inv := make([][]float64, p)
	for j := range inv {
		inv[j] = make([]float64, p)
	}
	for j := 0; j < p; j++ {
		e := make([]float64, p)
		e[j] = 1
		x := backSolve(r, e)
		for i := range x {
			inv[i][j] = x[i]
		}
	}
	return inv
}

// hacCov is the Newey–West covariance (Bartlett kernel, lag lags) of the
// weighted estimator with scores w_i·x̃_i·u_i, sandwiched by ainv, with the
// n/(n−p) small-sample factor.
func hacCov(d scaledDesign, keep []int, w, u []float64, ainv [][]float64, lags int) [][]float64 {
	n, p := d.n, len(keep)
	v := make([][]float64, n) // scores
	for i := range v {
		v[i] = make([]float64, p)
		for k, j := range keep {
			v[i][k] = w[i] * d.cols[j][i] * u[i]
		}
	}
	s := make([][]float64, p)
	for a := range s {
		s[a] = make([]float64, p)
	}
	for l := 0; l <= lags; l++ {
		kw := 1.0
		if l > 0 {
			kw = 1 - float64(l)/float64(lags+1)
		}
		for i := l; i < n; i++ {
			for a := 0; a < p; a++ {
				for b := 0; b < p; b++ {
					g := v[i][a] * v[i-l][b]
					if l > 0 {
						g += v[i-l][a] * v[i][b]
					}
					s[a][b] += kw * g
				}
			}
		}
	}
	cov := matMul(matMul(ainv, s), ainv)
	f := float64(n) / float64(max(n-p, 1))
	for a := range cov {
		for b := range cov[a] {
			cov[a][b] *= f
		}
	}
	return cov
}

// andrewsLag is the Bartlett bandwidth of Andrews (1991) for an AR(1) with
// coefficient rho, 1.1447·(α(1)·n)^⅓ with α(1) = 4ρ²/((1−ρ)²(1+ρ)²), never
// under the Newey–West (1994) rule 4·(n/100)^{2/9} nor over n/4. The plug-in
// matters: memory noise is persistent (allocator sawtooth, lazily returned
// pages), and the fixed Newey–West rule (5 lags at n = 500) cuts the
// autocovariance off long before it dies out, leaving intervals too narrow.
func andrewsLag(rho float64, n int) int {
	rho = stats.ClampRho(rho)
	nw := int(math.Floor(4 * math.Pow(float64(n)/100, 2.0/9)))
	a := 4 * rho * rho / ((1 - rho) * (1 - rho) * (1 + rho) * (1 + rho))
	l := int(math.Ceil(1.1447 * math.Cbrt(a*float64(n))))
	return min(max(l, nw, 1), max(n/4, 1))
}

func matMul(a, b [][]float64) [][]float64 {
	c := make([][]float64, len(a))
	for i := range a {
		c[i] = make([]float64, len(b[0]))
		for k := range b {
			for j := range b[0] {
				c[i][j] += a[i][k] * b[k][j]
			}
		}
	}
	return c
}

func dot(a, b []float64) float64 {
	var s float64
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

func norm(a []float64) float64 { return math.Sqrt(dot(a, a)) }

func axpy(alpha float64, x, y []float64) {
	for i := range x {
		y[i] += alpha * x[i]
	}
}

func scal(alpha float64, x []float64) {
	for i := range x {
		x[i] *= alpha
	}
}
