"""jax rules of the Bessel functions j0, j1, y0, y1, k0, k1 (and exp(x) k0, exp(x) k1) and of
Airy's Ai: Cephes' rational and Chebyshev approximations, with torch's coefficients, branches and
order of operations (aten/src/ATen/native/Math.h), so that the values are torch's. lax has none
of them, and jax.scipy.special.bessel_jn is far from these (NaN at 0, no accuracy past x ~ 20).

Every branch is computed and the right one selected (XLA evaluates all of them anyway); these are
not differentiable (torch gives them no gradient), so the unselected branches' infs and NaNs
reach nothing. The registrations are in elementwise.py, beside the other elementwise rules.
"""

from __future__ import annotations

import numpy as np
from jax import lax

_SQ2OPI = 0.797884560802865355879892119868763737  # sqrt(2 / pi)
_TWOOPI = 0.636619772367581343075535053490057448  # 2 / pi
_PIO4, _3PIO4 = 0.785398163397448309615660845819875721, 2.356194490192344928846982537459627163

# -- j0 and y0 ---------------------------------------------------------------------------------
J0_PP = (7.96936729297347051624e-04, 8.28352392107440799803e-02, 1.23953371646414299388e+00,
         5.44725003058768775090e+00, 8.74716500199817011941e+00, 5.30324038235394892183e+00,
         9.99999999999999997821e-01)
J0_PQ = (9.24408810558863637013e-04, 8.56288474354474431428e-02, 1.25352743901058953537e+00,
         5.47097740330417105182e+00, 8.76190883237069594232e+00, 5.30605288235394617618e+00,
         1.00000000000000000218e+00)
J0_QP = (-1.13663838898469149931e-02, -1.28252718670509318512e+00, -1.95539544257735972385e+01,
         -9.32060152123768231369e+01, -1.77681167980488050595e+02, -1.47077505154951170175e+02,
         -5.14105326766599330220e+01, -6.05014350600728481186e+00)
J0_QQ = (6.43178256118178023184e+01, 8.56430025976980587198e+02, 3.88240183605401609683e+03,
         7.24046774195652478189e+03, 5.93072701187316984827e+03, 2.06209331660327847417e+03,
         2.42005740240291393179e+02)
J0_RP = (-4.79443220978201773821e+09, 1.95617491946556577543e+12, -2.49248344360967716204e+14,
         9.70862251047306323952e+15)
J0_RQ = (4.99563147152651017219e+02, 1.73785401676374683123e+05, 4.84409658339962045305e+07,
         1.11855537045356834862e+10, 2.11277520115489217587e+12, 3.10518229857422583814e+14,
         3.18121955943204943306e+16, 1.71086294081043136091e+18)
Y0_YP = (1.55924367855235737965e+04, -1.46639295903971606143e+07, 5.43526477051876500413e+09,
         -9.82136065717911466409e+11, 8.75906394395366999549e+13, -3.46628303384729719441e+15,
         4.42733268572569800351e+16, -1.84950800436986690637e+16)
Y0_YQ = (1.04128353664259848412e+03, 6.26107330137134956842e+05, 2.68919633393814121987e+08,
         8.64002487103935000337e+10, 2.02979612750105546709e+13, 3.17157752842975028269e+15,
         2.50596256172653059228e+17)
# -- j1 and y1 ---------------------------------------------------------------------------------
J1_PP = (7.62125616208173112003e-04, 7.31397056940917570436e-02, 1.12719608129684925192e+00,
         5.11207951146807644818e+00, 8.42404590141772420927e+00, 5.21451598682361504063e+00,
         1.00000000000000000254e+00)
J1_PQ = (5.71323128072548699714e-04, 6.88455908754495404082e-02, 1.10514232634061696926e+00,
         5.07386386128601488557e+00, 8.39985554327604159757e+00, 5.20982848682361821619e+00,
         9.99999999999999997461e-01)
J1_QP = (5.10862594750176621635e-02, 4.98213872951233449420e+00, 7.58238284132545283818e+01,
         3.66779609360150777800e+02, 7.10856304998926107277e+02, 5.97489612400613639965e+02,
         2.11688757100572135698e+02, 2.52070205858023719784e+01)
J1_QQ = (7.42373277035675149943e+01, 1.05644886038262816351e+03, 4.98641058337653607651e+03,
         9.56231892404756170795e+03, 7.99704160447350683650e+03, 2.82619278517639096600e+03,
         3.36093607810698293419e+02)
J1_RP = (-8.99971225705559398224e+08, 4.52228297998194034323e+11, -7.27494245221818276015e+13,
         3.68295732863852883286e+15)
J1_RQ = (6.20836478118054335476e+02, 2.56987256757748830383e+05, 8.35146791431949253037e+07,
         2.21511595479792499675e+10, 4.74914122079991414898e+12, 7.84369607876235854894e+14,
         8.95222336184627338078e+16, 5.32278620332680085395e+18)
Y1_YP = (1.26320474790178026440e+09, -6.47355876379160291031e+11, 1.14509511541823727583e+14,
         -8.12770255501325109621e+15, 2.02439475713594898196e+17, -7.78877196265950026825e+17)
Y1_YQ = (5.94301592346128195359e+02, 2.35564092943068577943e+05, 7.34811944459721705660e+07,
         1.87601316108706159478e+10, 3.88231277496238566008e+12, 6.20557727146953693363e+14,
         6.87141087355300489866e+16, 3.97270608116560655612e+18)
# -- k0 and k1: Chebyshev series on [0, 2] and (2, inf) ---------------------------------------
K0_A = (1.37446543561352307156e-16, 4.25981614279661018399e-14, 1.03496952576338420167e-11,
        1.90451637722020886025e-09, 2.53479107902614945675e-07, 2.28621210311945178607e-05,
        1.26461541144692592338e-03, 3.59799365153615016266e-02, 3.44289899924628486886e-01,
        -5.35327393233902768720e-01)
K0_B = (5.30043377268626276149e-18, -1.64758043015242134646e-17, 5.21039150503902756861e-17,
        -1.67823109680541210385e-16, 5.51205597852431940784e-16, -1.84859337734377901440e-15,
        6.34007647740507060557e-15, -2.22751332699166985548e-14, 8.03289077536357521100e-14,
        -2.98009692317273043925e-13, 1.14034058820847496303e-12, -4.51459788337394416547e-12,
        1.85594911495471785253e-11, -7.95748924447710747776e-11, 3.57739728140030116597e-10,
        -1.69753450938905987466e-09, 8.57403401741422608519e-09, -4.66048989768794782956e-08,
        2.76681363944501510342e-07, -1.83175552271911948767e-06, 1.39498137188764993662e-05,
        -1.28495495816278026384e-04, 1.56988388573005337491e-03, -3.14481013119645005427e-02,
        2.44030308206595545468e+00)
K1_A = (-7.02386347938628759343e-18, -2.42744985051936593393e-15, -6.66690169419932900609e-13,
        -1.41148839263352776110e-10, -2.21338763073472585583e-08, -2.43340614156596823496e-06,
        -1.73028895751305206302e-04, -6.97572385963986435018e-03, -1.22611180822657148235e-01,
        -3.53155960776544875667e-01, 1.52530022733894777053e+00)
K1_B = (-5.75674448366501715755e-18, 1.79405087314755922667e-17, -5.68946255844285935196e-17,
        1.83809354436663880070e-16, -6.05704724837331885336e-16, 2.03870316562433424052e-15,
        -7.01983709041831346144e-15, 2.47715442448130437068e-14, -8.97670518232499435011e-14,
        3.34841966607842919884e-13, -1.28917396095102890680e-12, 5.13963967348173025100e-12,
        -2.12996783842756842877e-11, 9.21831518760500529508e-11, -4.19035475934189648750e-10,
        2.01504975519703286596e-09, -1.03457624656780970260e-08, 5.74108412545004946722e-08,
        -3.50196060308781257119e-07, 2.40648494783721712015e-06, -1.93619797416608296024e-05,
        1.95215518471351631108e-04, -2.85781685962277938680e-03, 1.03923736576817238437e-01,
        2.72062619048444266945e+00)
# -- Airy's Ai ---------------------------------------------------------------------------------
AI_AN = (3.46538101525629032477e-01, 1.20075952739645805542e+01, 7.62796053615234516538e+01,
         1.68089224934630576269e+02, 1.59756391350164413639e+02, 7.05360906840444183113e+01,
         1.40264691163389668864e+01, 9.99999999999999995305e-01)
AI_AD = (5.67594532638770212846e-01, 1.47562562584847203173e+01, 8.45138970141474626562e+01,
         1.77318088145400459522e+02, 1.64234692871529701831e+02, 7.14778400825575695274e+01,
         1.40959135607834029598e+01, 1.00000000000000000470e+00)
AI_AFN = (-1.31696323418331795333e-01, -6.26456544431912369773e-01, -6.93158036036933542233e-01,
          -2.79779981545119124951e-01, -4.91900132609500318020e-02, -4.06265923594885404393e-03,
          -1.59276496239262096340e-04, -2.77649108155232920844e-06, -1.67787698489114633780e-08)
AI_AFD = (1.33560420706553243746e+01, 3.26825032795224613948e+01, 2.67367040941499554804e+01,
          9.18707402907259625840e+00, 1.47529146771666414581e+00, 1.15687173795188044134e-01,
          4.40291641615211203805e-03, 7.54720348287414296618e-05, 4.51850092970580378464e-07)
AI_AGN = (1.97339932091685679179e-02, 3.91103029615688277255e-01, 1.06579897599595591108e+00,
          9.39169229816650230044e-01, 3.51465656105547619242e-01, 6.33888919628925490927e-02,
          5.85804113048388458567e-03, 2.82851600836737019778e-04, 6.98793669997260967291e-06,
          8.11789239554389293311e-08, 3.41551784765923618484e-10)
AI_AGD = (9.30892908077441974853e+00, 1.98352928718312140417e+01, 1.55646628932864612953e+01,
          5.47686069422975497931e+00, 9.54293611618961883998e-01, 8.64580826352392193095e-02,
          4.12656523824222607191e-03, 1.01259085116509135510e-04, 1.17166733214413521882e-06,
          4.91834570062930015649e-09)


def _c(x, v):
    return lax.full_like(x, v)


def _horner(coeffs, z):
    """coeffs[0] z^(n-1) + ... + coeffs[-1], as torch's loops (starting from 0)."""
    p = _c(z, 0.0)
    for c in coeffs:
        p = lax.add(lax.mul(p, z), _c(z, c))
    return p


def _chebyshev(coeffs, y):
    """Cephes' chbevl: the Chebyshev series at y (= 2t for t in [-1, 1])."""
    p, q, a = _c(y, 0.0), _c(y, 0.0), _c(y, coeffs[0])
    for c in coeffs[1:]:
        p, q = q, a
        a = lax.add(lax.sub(lax.mul(y, q), p), _c(y, c))
    return lax.mul(_c(y, 0.5), lax.sub(a, p))


def _select(*pairs_and_default):
    """select(c1, v1, select(c2, v2, ... default)): the first condition that holds wins."""
    *pairs, out = pairs_and_default
    for cond, value in reversed(pairs):
        out = lax.select(cond, value, out)
    return out


def _asymptotic(x, pp, pq, qp, qq, w, phase, sine_first):
    """The large-x form shared by j0/y0 and j1/y1: (P cos(x - phase) - 5/x Q sin(x - phase))
    sqrt(2 / (pi x)) for j, with sin and cos exchanged (and a plus) for y."""
    xn = lax.sub(x, _c(x, phase))
    p = lax.div(_horner(pp, w), _horner(pq, w))
    q = lax.mul(lax.div(_c(x, 5.0), x), lax.div(_horner(qp, w), _horner(qq, w)))
    if sine_first:
        s = lax.add(lax.mul(p, lax.sin(xn)), lax.mul(q, lax.cos(xn)))
    else:
        s = lax.sub(lax.mul(p, lax.cos(xn)), lax.mul(q, lax.sin(xn)))
    return lax.div(lax.mul(s, _c(x, _SQ2OPI)), lax.sqrt(x))


def _j0_of_abs(x):
    z = lax.mul(x, x)
    rational = lax.div(lax.mul(lax.mul(lax.sub(z, _c(x, 5.78318596294678452118e+00)),
                                       lax.sub(z, _c(x, 3.04712623436620863991e+01))),
                               _horner(J0_RP, z)), _horner(J0_RQ, z))
    tiny = lax.sub(_c(x, 1.0), lax.div(z, _c(x, 4.0)))
    big = _asymptotic(x, J0_PP, J0_PQ, J0_QP, J0_QQ, lax.div(_c(x, 25.0), z), _PIO4, False)
    return _select((lax.lt(x, _c(x, 1e-5)), tiny), (lax.le(x, _c(x, 5.0)), rational), big)


def bessel_j0(x):
    return _j0_of_abs(lax.abs(x))


def _j1_nonnegative(x):
    z = lax.mul(x, x)
    rational = lax.mul(lax.mul(lax.mul(lax.div(_horner(J1_RP, z), _horner(J1_RQ, z)), x),
                               lax.sub(z, _c(x, 1.46819706421238932572e+01))),
                       lax.sub(z, _c(x, 4.92184563216946036703e+01)))
    w = lax.div(_c(x, 5.0), x)
    big = _asymptotic(x, J1_PP, J1_PQ, J1_QP, J1_QQ, lax.mul(w, w), _3PIO4, False)
    return lax.select(lax.le(x, _c(x, 5.0)), rational, big)


def bessel_j1(x):
    negative = lax.lt(x, _c(x, 0.0))
    out = _j1_nonnegative(lax.select(negative, lax.neg(x), x))
    return lax.select(negative, lax.neg(out), out)


def bessel_y0(x):
    z = lax.mul(x, x)
    small = lax.add(lax.div(_horner(Y0_YP, z), _horner(Y0_YQ, z)),
                    lax.mul(lax.mul(_c(x, _TWOOPI), lax.log(x)), _j0_of_abs(x)))
    big = _asymptotic(x, J0_PP, J0_PQ, J0_QP, J0_QQ, lax.div(_c(x, 25.0), z), _PIO4, True)
    le5 = lax.le(x, _c(x, 5.0))
    return _select((lax.bitwise_and(le5, lax.eq(x, _c(x, 0.0))), _c(x, -np.inf)),
                   (lax.bitwise_and(le5, lax.lt(x, _c(x, 0.0))), _c(x, np.nan)),
                   (le5, small), big)


def bessel_y1(x):
    z = lax.mul(x, x)
    small = lax.add(lax.mul(x, lax.div(_horner(Y1_YP, z), _horner(Y1_YQ, z))),
                    lax.mul(_c(x, _TWOOPI), lax.sub(lax.mul(_j1_nonnegative(x), lax.log(x)),
                                                    lax.div(_c(x, 1.0), x))))
    w = lax.div(_c(x, 5.0), x)
    big = _asymptotic(x, J1_PP, J1_PQ, J1_QP, J1_QQ, lax.mul(w, w), _3PIO4, True)
    le5 = lax.le(x, _c(x, 5.0))
    return _select((lax.bitwise_and(le5, lax.eq(x, _c(x, 0.0))), _c(x, -np.inf)),
                   (lax.bitwise_and(le5, lax.lt(x, _c(x, 0.0))), _c(x, np.nan)),
                   (le5, small), big)


def _bessel_k(x, order: int, scaled: bool):
    """k0/k1 (``scaled``: times exp(x)). On [0, 2]: a Chebyshev series and the i0/i1 term; above:
    exp(-x) times a Chebyshev series in 8/x, over sqrt(x)."""
    a_coeffs, b_coeffs = (K0_A, K0_B) if order == 0 else (K1_A, K1_B)
    series = _chebyshev(a_coeffs, lax.sub(lax.mul(x, x), _c(x, 2.0)))
    log_half = lax.log(lax.mul(_c(x, 0.5), x))
    if order == 0:
        i0 = lax.mul(lax.exp(lax.abs(x)), lax.bessel_i0e(x))
        small = lax.sub(series, lax.mul(log_half, i0))
    else:
        i1 = lax.mul(lax.exp(lax.abs(x)), lax.bessel_i1e(x))
        small = lax.add(lax.mul(log_half, i1), lax.div(series, x))
    big = _chebyshev(b_coeffs, lax.sub(lax.div(_c(x, 8.0), x), _c(x, 2.0)))
    if scaled:
        small = lax.mul(small, lax.exp(x))
    else:
        big = lax.mul(lax.exp(lax.neg(x)), big)
    big = lax.div(big, lax.sqrt(x))
    return _select((lax.eq(x, _c(x, 0.0)), _c(x, np.inf)), (lax.lt(x, _c(x, 0.0)), _c(x, np.nan)),
                   (lax.le(x, _c(x, 2.0)), small), big)


def bessel_k0(x):
    return _bessel_k(x, 0, False)


def bessel_k1(x):
    return _bessel_k(x, 1, False)


def bessel_k0e(x):
    return _bessel_k(x, 0, True)


def bessel_k1e(x):
    return _bessel_k(x, 1, True)


def airy_ai(x):
    """Ai: asymptotic forms below -2.09 and from 2.09 on, the Maclaurin series between (torch
    sums it until a term is below epsilon; 12 terms reach that for |x| < 2.09 in float64)."""
    one = _c(x, 1.0)
    # x < -2.09: the oscillating form
    neg = lax.min(x, _c(x, -2.09))  # keeps the square roots of the other branches real
    zeta_neg = lax.div(lax.mul(lax.mul(_c(x, -2.0), neg), lax.sqrt(lax.neg(neg))), _c(x, 3.0))
    z = lax.div(one, zeta_neg)
    zz = lax.mul(z, z)
    t = lax.add(zeta_neg, _c(x, 0.25 * np.pi))
    oscillating = lax.mul(
        lax.div(_c(x, 5.64189583547756286948e-01), lax.sqrt(lax.sqrt(lax.neg(neg)))),
        lax.sub(lax.mul(lax.sin(t), lax.add(one, lax.div(lax.mul(zz, _horner(AI_AFN, zz)),
                                                         _horner(AI_AFD, zz)))),
                lax.mul(lax.cos(t), lax.div(lax.mul(z, _horner(AI_AGN, zz)),
                                            _horner(AI_AGD, zz)))))
    # x >= 2.09: the decaying form
    pos = lax.max(x, _c(x, 2.09))
    zeta = lax.div(lax.mul(lax.mul(_c(x, 2.0), pos), lax.sqrt(pos)), _c(x, 3.0))
    w = lax.div(one, zeta)
    decaying = lax.div(lax.mul(_c(x, 5.64189583547756286948e-01),
                               lax.div(_horner(AI_AN, w), _horner(AI_AD, w))),
                       lax.mul(lax.mul(_c(x, 2.0), lax.sqrt(lax.sqrt(pos))), lax.exp(zeta)))
    # between: Ai = c1 f - c2 g, f and g the two Maclaurin series in x^3
    f, g, k, m, n = one, x, one, one, x
    cube = lax.mul(lax.mul(x, x), x)
    for _ in range(12):
        m = lax.mul(m, cube)
        k = lax.add(k, one)
        m = lax.div(m, k)
        n = lax.mul(n, cube)
        k = lax.add(k, one)
        n = lax.div(n, k)
        m = lax.div(m, k)
        f = lax.add(f, m)
        k = lax.add(k, one)
        n = lax.div(n, k)
        g = lax.add(g, n)
    series = lax.sub(lax.mul(_c(x, 0.355028053887817239260), f),
                     lax.mul(_c(x, 0.258819403792806798405), g))
    return _select((lax.eq(lax.abs(x), _c(x, np.inf)), _c(x, np.nan)),
                   (lax.gt(x, _c(x, 103.892)), _c(x, 0.0)),
                   (lax.lt(x, _c(x, -2.09)), oscillating),
                   (lax.ge(x, _c(x, 2.09)), decaying), series)
